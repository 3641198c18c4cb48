// The .cnv language (SPEC §1). Keywords are also accepted as names where a name is
// expected, so that `input`, `output` or `layout` never make a model unparseable.
grammar Cnv;

file      : model* EOF ;
model     : MODEL name LBRACE statement* RBRACE ;

statement : (inputDecl | paramDecl | outputStmt | assignment) SEMI? ;
inputDecl : INPUT name COLON tensorType layoutClause? ;
paramDecl : PARAM name COLON tensorType layoutClause? ;
outputStmt: OUTPUT name layoutClause? ;
assignment: name ASSIGN expr ;

tensorType   : dtype=name LBRACK dim (COMMA dim)* RBRACK ;
dim          : INT | name ;
layoutClause : LAYOUT name ;

expr      : call | name ;
call      : callee=name LPAREN (argument (COMMA argument)*)? RPAREN ;
argument  : key=name ASSIGN attrValue   # keywordArgument
          | expr                        # positionalArgument
          ;
attrValue : expr                                   # nameOrCallValue
          | sign=(PLUS | MINUS)? number            # numberValue
          | LPAREN attrValue (COMMA attrValue)* RPAREN  # tupleValue
          ;
number    : INT | FLOAT ;
name      : ID | MODEL | INPUT | PARAM | OUTPUT | LAYOUT ;

MODEL  : 'model' ;
INPUT  : 'input' ;
PARAM  : 'param' ;
OUTPUT : 'output' ;
LAYOUT : 'layout' ;

LBRACE : '{' ;
RBRACE : '}' ;
LBRACK : '[' ;
RBRACK : ']' ;
LPAREN : '(' ;
RPAREN : ')' ;
COMMA  : ',' ;
COLON  : ':' ;
SEMI   : ';' ;
ASSIGN : '=' ;
PLUS   : '+' ;
MINUS  : '-' ;

ID     : [a-zA-Z_] [a-zA-Z_0-9]* ;
FLOAT  : [0-9]+ '.' [0-9]* EXPONENT?
       | '.' [0-9]+ EXPONENT?
       | [0-9]+ EXPONENT
       ;
INT    : [0-9]+ ;
fragment EXPONENT : [eE] [+-]? [0-9]+ ;

LINE_COMMENT : ('#' | '//') ~[\r\n]* -> skip ;
WS           : [ \t\r\n\f]+ -> skip ;
// Anything else becomes one token so the parser reports it with its position.
UNKNOWN_CHAR : . ;
